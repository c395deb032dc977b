"""Identity: link the Patient records of one human into a Person; match, review, merge."""
