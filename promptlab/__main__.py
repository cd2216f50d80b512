from promptlab._entry import main

main()
