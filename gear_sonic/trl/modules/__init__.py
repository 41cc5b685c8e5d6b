"""Networks: MLP/RNN building blocks, the universal token module, actor and critic."""
