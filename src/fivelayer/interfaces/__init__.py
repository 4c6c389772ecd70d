"""User interfaces: the command line, HTML reports and the local web app."""
