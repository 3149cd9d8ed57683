"""What a version shows the world: the HTML report, plots, dataset and model cards, export and the Hugging Face Hub."""
