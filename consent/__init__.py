"""Pure consent policy engine: request + consents + resource -> decision with reasons."""
