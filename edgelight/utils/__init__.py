"""Helpers with no model or runtime knowledge: atomic files, output folders, native logs."""
