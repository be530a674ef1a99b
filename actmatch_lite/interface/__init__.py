"""Where people meet the package: the command line, the demo, figures, widgets, notebook tools and exercises.

It may import every other layer; nothing outside it imports it.
"""
