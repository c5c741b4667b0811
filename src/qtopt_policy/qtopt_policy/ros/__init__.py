"""ROS 2 adapters shared by every node: spinning and shutdown (``node_main``), QoS profiles
(``qos``), and the transport check tool. The only modules of this package besides the nodes
that import rclpy."""
