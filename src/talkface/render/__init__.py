"""render: from motion back to pixels (dense mesh warp, mouth interior, compositing)."""
