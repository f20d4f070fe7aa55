"""Read models for the dashboard: plain data (DataFrames, dataclasses) built from the adapters.

Pages call these (wrapped in ``st.cache_data``); nothing here imports streamlit or boto3.
"""
