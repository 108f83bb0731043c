"""mat-interp: a digital twin of scanning measurements (see README)."""
