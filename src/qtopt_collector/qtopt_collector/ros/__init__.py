"""ROS 2 adapters of the cell: the service clients nodes call each other with
(``service_calls``), the ros2_control / MoveIt Servo backends of a real arm
(``hardware_backends``), the runner that starts the cell graph without ``ros2 launch``
(``runner``) and ``qtopt cell`` (``cli``). With the ``*_node`` modules, the only modules of
this package that import rclpy."""
