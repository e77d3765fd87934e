"""PySide6 view layer of Forensic Workbench. Holds no ML code: it only calls ``engine``."""
