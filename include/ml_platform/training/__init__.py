"""Training: churn labels and entity frames (issue 3); model families, HPO and registration (issue 4)."""
