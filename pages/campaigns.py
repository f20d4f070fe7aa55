import streamlit as st

st.title("campaigns")
