"""Launch recipes for a chosen option: engine command lines and SkyPilot task YAML."""
