"""The R1 Workbench app: a Gradio board that watches run directories while they train.

    workbench app --runs runs            # or: python -m apps.app --runs runs
    from apps.app import launch; launch("runs")

``apps.data`` holds the pure functions behind it (no gradio import); ``apps.app`` the Blocks UI.
"""
