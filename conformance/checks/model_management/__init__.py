"""model-management: lifecycle actions, the state machine, and what serves after each action."""
