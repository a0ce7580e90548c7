"""The static HTML report: one self-contained page of sections, figures as inline SVG, Jinja2 templates."""
