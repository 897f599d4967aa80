"""Scope machinery: views, the process command line, application order, manual, argparse."""
