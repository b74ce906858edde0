"""``python -m llmopt_solver`` runs the ``llmopt`` CLI."""

from llmopt_solver.cli import main

if __name__ == "__main__":
    main()
