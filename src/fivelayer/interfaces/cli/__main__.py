from fivelayer.interfaces.cli.app import run

run()
