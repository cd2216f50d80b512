from promptlab.cli import main

main(prog_name="promptlab")
