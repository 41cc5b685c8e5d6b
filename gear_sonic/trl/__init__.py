"""The learning side: policy and value networks, auxiliary losses, trainers."""
