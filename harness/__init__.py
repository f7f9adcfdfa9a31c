"""Training, evaluation, tracking and reports for the AlexNet-family variant registry."""
