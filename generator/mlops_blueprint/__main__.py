from mlops_blueprint.cli import main

main()
