"""Presentation shared by every face (magics, widgets, the API's own reprs): pure, text and HTML only."""
