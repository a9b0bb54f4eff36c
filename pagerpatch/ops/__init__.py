"""Running the platform: embedded servers, supervisor, the local stack, the demo."""
