"""face: landmarks, the portrait's rig (crop, mesh, neutral shape) and its expression basis."""
