"""Report forms: terminal (rich), JSON (the standard's ConformanceReport), JUnit XML and a self-contained HTML page."""
