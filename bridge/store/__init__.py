"""All database access: engine, ORM models and one repository per table family."""
