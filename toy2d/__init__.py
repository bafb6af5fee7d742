"""2-D mixtures, MLP G/D, PacGAN coverage metrics and the DiracGAN analysis (paper Appendix B, E)."""
