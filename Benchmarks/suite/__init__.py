"""The benchmark suite behind Scripts/bench: each module measures one thing,
side by side with its baseline in the same run, and returns a Markdown section."""
