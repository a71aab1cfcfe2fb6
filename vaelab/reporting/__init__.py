"""From run records to tables and figures: sweep reports and plots."""
