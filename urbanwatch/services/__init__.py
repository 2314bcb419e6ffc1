"""The managed local services: Mosquitto and influxd under a state folder, and broker logins."""
