"""The trainers `backprop generate --all` writes from generated/specs/, committed to read and import."""
