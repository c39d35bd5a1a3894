"""core: discovery, health, the model list and model ids, the error envelope, input validation, fuzzing."""
