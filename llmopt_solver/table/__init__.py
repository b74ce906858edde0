"""The coefficient table: every option of one job, with predictions, costs and feasibility."""
