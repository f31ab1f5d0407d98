"""Every write of the retention workflow, one module per thing it changes.

Admin actions, API views, console buttons, bot handlers, tasks and commands all call these
functions, so the same business action behaves the same on every surface.
"""
