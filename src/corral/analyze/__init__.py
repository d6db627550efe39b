"""Reading, judging and explaining profiles: AppArmor parsing, lint, explain, diff, import."""
