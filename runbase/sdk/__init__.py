"""The logging SDK: init, log, finish."""
