"""qtopt_msgs: every interface survives rclpy serialization, and matches the MDP spec."""

import math

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message

from qtopt_msgs.action import RunEpisode
from qtopt_msgs.msg import Episode, GraspAction, ModelUpdate, Observation, Transition
from qtopt_msgs.srv import SelectAction
from qtopt_policy import spec
from qtopt_policy.msg_conversions import image_from_msg, image_to_msg, observation_to_msg


def _image(seed: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _action(i: int) -> GraspAction:
    return GraspAction(
        world_vector=[0.01 * i, -0.02, 0.03],
        vertical_rotation=[math.sin(0.1 * i), math.cos(0.1 * i)],
        gripper_close=bool(i % 2),
        gripper_open=not bool(i % 2),
        terminate=i == 2,
    )


def _episode() -> Episode:
    steps = [
        Transition(
            step=i,
            observation=observation_to_msg(_image(i), bool(i % 2), 0.3 - 0.1 * i),
            action=_action(i),
            reward=spec.STEP_PENALTY + (spec.SUCCESS_REWARD if i == 2 else 0.0),
            done=i == 2,
            q_value=0.5 + 0.1 * i,
        )
        for i in range(3)
    ]
    return Episode(
        episode_id="cell7-42-3",
        cell_id="cell7",
        policy_name="noisy",
        model_version=12,
        termination=Episode.TERMINATION_LEARNED,
        steps=steps,
        final_observation=observation_to_msg(_image(9), True, 0.25),
        success=True,
        ground_truth=Episode.GROUND_TRUTH_SUCCESS,
        total_reward=float(sum(s.reward for s in steps)),
        object_ids=["random_urdfs/001", "random_urdfs/742"],
        seed=2**40 + 5,
    )


MESSAGES = [
    _action(1),
    observation_to_msg(_image(1, 472), True, 0.123),
    _episode(),
    ModelUpdate(model_path="/tmp/m.pt", version=3, training_step=40000, sha256="ab" * 32),
    SelectAction.Request(observation=observation_to_msg(_image(2), False, 0.2), step=4,
                         policy="greedy"),
    SelectAction.Response(action=_action(3), q_value=0.7, model_version=3, success=True),
    RunEpisode.Goal(policy="scripted", max_steps=20, scripted_termination=True, seed=7),
    RunEpisode.Result(episode_id="e", total_reward=0.85, success=True, steps=4),
    RunEpisode.Feedback(step=2, action=_action(2), q_value=0.4, height_to_bottom=0.1),
]


def assert_same_message(a, b, path="msg"):
    """Field-by-field equality; float fields compared at float32 precision (their wire type)."""
    assert type(a) is type(b), path
    for name in a.get_fields_and_field_types():
        x, y = getattr(a, name), getattr(b, name)
        where = f"{path}.{name}"
        if hasattr(x, "get_fields_and_field_types"):
            assert_same_message(x, y, where)
        elif isinstance(x, list) and x and hasattr(x[0], "get_fields_and_field_types"):
            assert len(x) == len(y), where
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                assert_same_message(u, v, f"{where}[{i}]")
        elif isinstance(x, float):
            assert np.float32(x) == np.float32(y), where
        else:
            assert np.array_equal(np.asarray(x), np.asarray(y)), where


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip_through_rclpy_serialization(msg):
    back = deserialize_message(serialize_message(msg), type(msg))
    assert_same_message(back, msg)
    # A second trip changes nothing once values are at their wire precision.
    assert deserialize_message(serialize_message(back), type(msg)) == back


def test_episode_round_trip_keeps_images_bit_exact():
    episode = _episode()
    back = deserialize_message(serialize_message(episode), Episode)
    for i, step in enumerate(back.steps):
        np.testing.assert_array_equal(image_from_msg(step.observation.image), _image(i))
    np.testing.assert_array_equal(image_from_msg(back.final_observation.image), _image(9))


def test_grasp_action_fields_follow_the_spec():
    fields = GraspAction.get_fields_and_field_types()
    assert list(fields) == [f.name for f in spec.ACTION_FIELDS]
    for f in spec.ACTION_FIELDS:
        expected = "boolean" if f.kind is spec.FieldKind.BINARY else f"float[{f.size}]"
        assert fields[f.name] == expected, f.name


def test_observation_fields_follow_the_spec():
    fields = Observation.get_fields_and_field_types()
    assert list(fields) == ["header"] + [f.name for f in spec.STATE_FIELDS]
    assert fields["image"] == "sensor_msgs/Image"
    assert fields["gripper_closed"] == "boolean"
    assert fields["height_to_bottom"] == "float"


def test_image_conversion_rejects_bad_input_with_the_bad_value():
    with pytest.raises(ValueError, match="float32"):
        image_to_msg(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        image_to_msg(np.zeros((4, 4), np.uint8))
    msg = image_to_msg(_image(0))
    msg.encoding = "bgr8"
    with pytest.raises(ValueError, match="bgr8"):
        image_from_msg(msg)
    msg = image_to_msg(_image(0))
    msg.data = msg.data[:-3]
    with pytest.raises(ValueError, match="189 bytes"):
        image_from_msg(msg)
    with pytest.raises(ValueError, match="nan"):
        observation_to_msg(_image(0), False, float("nan"))


def test_comparison_detects_a_changed_nested_field():
    changed = deserialize_message(serialize_message(_episode()), Episode)
    changed.steps[1].action.world_vector[2] = 0.5
    with pytest.raises(AssertionError, match=r"steps\[1\]\.action\.world_vector"):
        assert_same_message(changed, _episode())
