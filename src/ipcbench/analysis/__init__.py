"""Analysis of loaded results: comparisons and their statistics, findings and winners. Never draws."""
