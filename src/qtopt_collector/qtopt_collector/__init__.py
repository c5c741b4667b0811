"""QT-Opt grasping cell: simulation, hardware adapters, success detection and recording."""
