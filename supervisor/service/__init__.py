"""Running the daemon as a service: sd_notify, socket activation, unit files."""
