"""The benchmark suite behind Scripts/bench: each module measures one thing,
side by side with its baseline in the same run; each `run(build, root, settings)`
returns its Markdown section."""
