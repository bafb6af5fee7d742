"""Generator and discriminator building blocks for the roadmap configurations A -> E (paper Section 3)."""
