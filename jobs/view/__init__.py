"""`landscape view RESULT`: a page on 127.0.0.1 that redraws the heatmap of a running scan as tiles land.

state.py turns the result as it is now into JSON (the heatmap's values, progress, ETA); server.py
serves the page, plotly's JavaScript and that JSON, and stops when asked (the page's Stop button,
Ctrl-C, SIGTERM).
"""
