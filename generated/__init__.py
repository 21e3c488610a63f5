"""The trainers `backprop generate --all` writes from generated/specs/, kept to read and import."""
