# `pytest --micropv-replay=SCHEDULE`: the session runs that one schedule instead of the
# collected tests. It fails -- printing the counterexample and its timeline -- while the
# schedule still breaks a check, and passes once the bug is fixed. Under xdist the timeline
# goes in the failure report, which is forwarded (worker stdout is not).
import pytest


class ReplayFailure(AssertionError):
    pass


class ReplayItem(pytest.Item):
    def __init__(self, *, schedule, **kwargs):
        super().__init__(**kwargs)
        self.schedule = schedule

    def runtest(self):
        from .cli import replay
        from .search import ExploreError

        lines = []
        try:
            status, _, _ = replay(self.schedule, lines.append)
        except (ExploreError, ValueError) as e:
            raise ReplayFailure(f"micropv replay: {e}") from None
        self.user_properties.append(("micropv_replay", "\n".join(lines)))
        if status:
            raise ReplayFailure("\n".join(lines))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ReplayFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, "micropv replay"


class ReplayPlugin:
    def __init__(self, schedule):
        self.schedule = schedule

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        if items:
            config.hook.pytest_deselected(items=list(items))
        items[:] = [ReplayItem.from_parent(session, name="micropv-replay",
                                           schedule=self.schedule)]  # fmt: skip


def configure(config, schedule):
    """Called by the micropv pytest plugin when --micropv-replay is given."""
    from .schedule import Schedule

    try:
        Schedule.parse(schedule)
    except ValueError as e:
        raise pytest.UsageError(f"--micropv-replay: {e}") from None
    config.pluginmanager.register(ReplayPlugin(schedule), "micropv-replay")
