"""``python -m llmopt_solver`` runs the ``llmopt`` CLI."""

from .cli import main

if __name__ == "__main__":
    main()
