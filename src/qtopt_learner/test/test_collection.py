"""Which policy collects each episode of the concurrent loop (App. B, C)."""

import pytest

from qtopt_learner.collection import CollectionConfig, CollectionSchedule


def test_scripted_until_the_switch_step_and_a_model_exist():
    schedule = CollectionSchedule(CollectionConfig(switch_step=100, learned_share=0.5))
    assert [schedule.choose(i) for i in range(3)] == ["scripted_noisy"] * 3
    schedule.observe(step=150, model_version=0)  # past the step, but nothing exported yet
    assert schedule.choose(3) == "scripted_noisy"
    schedule.observe(step=150, model_version=150)
    assert schedule.switched
    chosen = [schedule.choose(i) for i in range(4, 14)]
    assert chosen == ["noisy", "scripted_noisy"] * 5
    assert schedule.chosen == {"scripted_noisy": 9, "noisy": 5}
    schedule.observe(step=10, model_version=1)  # an older status does not undo the switch
    assert schedule.switched


@pytest.mark.parametrize("share, learned", [(0.0, 0), (0.25, 5), (0.8, 16), (1.0, 20)])
def test_learned_share_is_held_among_episodes_after_the_switch(share, learned):
    schedule = CollectionSchedule(CollectionConfig(switch_step=0, learned_share=share))
    schedule.observe(step=0, model_version=1)
    chosen = [schedule.choose(i) for i in range(20)]
    assert chosen.count("noisy") == learned


@pytest.mark.parametrize("kwargs, bad", [
    ({"switch_step": -1}, "switch_step -1"), ({"learned_share": 1.2}, "learned_share 1.2"),
    ({"max_lag_steps": -5}, "max_lag_steps -5"),
    ({"scripted_policy": "noisy"}, "scripted_policy 'noisy'"),
    ({"learned_policy": "scripted"}, "learned_policy 'scripted'")])
def test_bad_config_names_the_value(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        CollectionConfig(**kwargs)


def test_new_episodes_wait_while_the_learner_lags_behind_its_allowance():
    schedule = CollectionSchedule(CollectionConfig(max_lag_steps=100), steps_per_transition=2.0)
    assert schedule.ready()  # nothing collected yet
    schedule.observe(step=0, model_version=0, transitions=50)  # 100 steps allowed, 0 taken
    assert schedule.ready()
    schedule.observe(step=0, model_version=0, transitions=51)  # 102 allowed: 102 behind
    assert not schedule.ready()
    schedule.observe(step=2, model_version=0, transitions=51)
    assert schedule.ready()
    schedule.observe(step=2, model_version=0, transitions=500)
    assert not schedule.ready()
    schedule.observe(step=2, model_version=0, transitions=500, finished=True)
    assert schedule.ready()  # the learner takes no more steps: nothing to wait for
    never = CollectionSchedule(CollectionConfig(max_lag_steps=0), steps_per_transition=2.0)
    never.observe(step=0, model_version=0, transitions=10_000)
    assert never.ready()
