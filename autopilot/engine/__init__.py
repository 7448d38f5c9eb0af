"""The local Rekognition Custom Labels engine: an HTTP service speaking the Rekognition JSON protocol.

from autopilot.engine import EngineServer, EngineConfig
server = EngineServer(EngineConfig(time_scale=0.01))
url = server.start(host="127.0.0.1", port=0)
...
server.stop()
"""

from autopilot.engine.config import EngineConfig
from autopilot.engine.faults import Fault, FaultInjector
from autopilot.engine.server import EngineServer

__all__ = ["EngineConfig", "EngineServer", "Fault", "FaultInjector"]
