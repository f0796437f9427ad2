"""The access log required by HSLF-FS 2016:40: who did what, on which object, for which unit, when."""
