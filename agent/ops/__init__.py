"""Running a site: configuration, its documentation, health conditions, doctor checks and logging."""
